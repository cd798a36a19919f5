// Number and shape formatting shared by the table, the summary and the detail.

// Short and exact enough to compare: 0 stays "0" (bit-exact is the point), tiny values go exponential.
export function num(x, digits = 3) {
  if (x === null || x === undefined) return "—";
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 1e-3 && abs < 1e4) return String(Number(x.toPrecision(digits + 1)));
  return x.toExponential(digits - 1).replace("e+", "e");
}

// A maxdiff in the cmp table: "0" or "5.4e-9", the form the lecture's cmp printed.
export function diff(x) {
  if (x === null || x === undefined) return "—";
  if (x === 0) return "0";
  return x.toExponential(1).replace("e+", "e");
}

// Python's tuple notation, as torch prints shapes: (32, 64), (27,).
export function shape(dims) {
  if (!dims) return "—";
  return dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(", ")})`;
}

export function loss(x) {
  return x === null || x === undefined ? "—" : x.toFixed(4);
}
