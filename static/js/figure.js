// plotly.js, loaded on demand, and the one figure the server built for the selected node. The spec
// ({data, layout} with base64 typed arrays) goes to Plotly.react as it is: nothing is recomputed.

let plotlyPromise = null;

// A script element added by code, not a <script> in the HTML: main.js decides when the ~1 s parse
// may block the main thread (after the run request is on its way). The file itself is already
// downloading thanks to <link rel="preload">, so this costs no extra round trip.
export function loadPlotly(url) {
  plotlyPromise ??= new Promise((resolve, reject) => {
    if (window.Plotly) {
      resolve(window.Plotly);
      return;
    }
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.addEventListener("load", () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js defined no Plotly"))));
    script.addEventListener("error", () => reject(new Error("plotly.js failed to load")));
    document.head.append(script);
  });
  return plotlyPromise;
}

const CONFIG = {
  displaylogo: false,
  responsive: true,  // follow the panel when the window is resized
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
};

export async function drawFigure(div, figure, filename) {
  const Plotly = await plotlyPromise;
  const config = { ...CONFIG, toImageButtonOptions: { filename } };
  await Plotly.react(div, figure.data, figure.layout, config);
}

export function clearFigure(div) {
  if (window.Plotly && div.data) window.Plotly.purge(div);
}

// `responsive` only follows the window; the panel also changes size when the error banner opens or
// closes, so watch the div itself. One resize per frame at most.
export function followPanelSize(div) {
  let queued = false;
  new ResizeObserver(() => {
    if (queued || !window.Plotly || !div.data) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      window.Plotly.Plots.resize(div);
    });
  }).observe(div);
}
