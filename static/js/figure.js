// plotly.js, loaded on demand, and the one figure the server built for the selected node. The spec
// ({data, layout} with base64 typed arrays) goes to Plotly.react as it is: nothing is recomputed. The
// one choice made here is the arrangement: a narrow box (a phone) takes the one-column arrangement
// the figure carries in layout.meta.arrangements, merged over the 2 × 2 grid.

let plotlyPromise = null;

// The modebar's "Share chart…" uploads to Plotly's cloud: nothing a page that works offline should
// offer. setPlotConfig makes that the default of every plot on the page (the Train view's too).
const PAGE_DEFAULTS = { showSendToCloud: false, showEditInChartStudio: false, showLink: false, displaylogo: false };

// A script element added by code, not a <script> in the HTML: main.js decides when the ~1 s parse
// may block the main thread (after the run request is on its way). The file itself is already
// downloading thanks to <link rel="preload">, so this costs no extra round trip.
export function loadPlotly(url) {
  plotlyPromise ??= new Promise((resolve, reject) => {
    const ready = () => {
      window.Plotly.setPlotConfig(PAGE_DEFAULTS);
      resolve(window.Plotly);
    };
    if (window.Plotly) {
      ready();
      return;
    }
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.addEventListener("load", () => (window.Plotly ? ready() : reject(new Error("plotly.js defined no Plotly"))));
    script.addEventListener("error", () => reject(new Error("plotly.js failed to load")));
    document.head.appendChild(script);
  });
  return plotlyPromise;
}

const CONFIG = {
  ...PAGE_DEFAULTS,
  responsive: true,  // follow the panel when the window is resized
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines", "sendChartToCloud"],
};

// Below this width (CSS px) the 2 × 2 panels get too narrow for a colour bar between them; the one
// column of four needs a box at least 1.5 times as tall as wide (a phone's: app.css sets it).
export const COLUMN_BELOW_PX = 560;

export function arrangementFor(div) {
  const { clientWidth: w, clientHeight: h } = div;
  return w > 0 && w < COLUMN_BELOW_PX && h >= 1.5 * w ? "column" : "grid";
}

// The figure in one arrangement: "grid" is the spec itself; another is merged over it, one level
// deep (layout.xaxis2.domain replaces, layout.xaxis2's other keys stay; likewise trace.colorbar).
export function arranged(figure, name) {
  const alt = name === "grid" ? null : figure.layout.meta?.arrangements?.[name];
  if (!alt) return figure;
  const layout = { ...figure.layout };
  for (const [key, part] of Object.entries(alt.layout ?? {})) layout[key] = { ...layout[key], ...part };
  const data = figure.data.map((trace, i) => {
    const part = alt.traces?.[i];
    if (!part) return trace;
    const merged = { ...trace };
    for (const [key, value] of Object.entries(part)) {
      merged[key] = value && typeof value === "object" && !Array.isArray(value) ? { ...trace[key], ...value } : value;
    }
    return merged;
  });
  return { data, layout };
}

export async function drawFigure(div, figure, filename) {
  const Plotly = await plotlyPromise;
  const config = { ...CONFIG, toImageButtonOptions: { filename } };
  const name = arrangementFor(div);
  const shown = arranged(figure, name);
  div.dataset.arrangement = name;
  div.figureSpec = figure;  // to re-arrange on resize without asking the server again
  await Plotly.react(div, shown.data, shown.layout, config);
}

// The text in the figure's place until a figure is drawn ("no run", "plotly.js failed to load");
// static, so the page's relabelling by language leaves it alone.
export function drawFigureMessage(text) {
  const placeholder = document.getElementById("figure-placeholder");
  if (!placeholder) return;
  delete placeholder.dataset.i18n;
  placeholder.textContent = text;
}

export function clearFigure(div) {
  if (window.Plotly && div.data) window.Plotly.purge(div);
}

// `responsive` only follows the window; the panel also changes size when the error banner opens or
// closes, so watch the div itself. One resize per frame at most; crossing COLUMN_BELOW_PX redraws the
// figure in the other arrangement.
export function followPanelSize(div) {
  let queued = false;
  new ResizeObserver(() => {
    if (queued || !window.Plotly || !div.data) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      if (div.figureSpec && div.dataset.arrangement && arrangementFor(div) !== div.dataset.arrangement) {
        drawFigure(div, div.figureSpec, div._context?.toImageButtonOptions?.filename ?? "figure").catch(() => {});
      } else {
        window.Plotly.Plots.resize(div);
      }
    });
  }).observe(div);
}
