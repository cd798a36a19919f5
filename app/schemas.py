"""Request and response models, named by role. Responses are serialised with orjson straight from
plain dicts (fast); these models document them in OpenAPI and the tests validate against them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ninja_core.config import LIMITS, Config
from ninja_core.dojo import source_limits
from ninja_core.nets import NETS

_D = Config()
NODE_NAME_CHARS = r"^[A-Za-z_][A-Za-z0-9_]*$"  # the node names of every network are Python identifiers
Status = Literal["exact", "approx", "mismatch", "shape_mismatch", "missing"]


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 32 and 32.0 are both integers; "32" and true are not (pydantic's
    lax mode would take them, its strict mode would refuse 32.0)."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("must be an integer")
    return value


def _bounded(name: str, description: str) -> Any:
    """The engine's range for `name` (one place for every limit), stated in the field's schema."""
    lo, hi = LIMITS[name]
    return Field(ge=lo, le=hi, description=f"{description} ({lo}..{hi})")


def _size(name: str, description: str) -> Any:
    """A network size: optional (null or absent = the network's default). The schema states the widest
    range over the networks that have it; each network's own range is checked (422 naming it)."""
    specs = [(net.name, s) for net in NETS.values() if (s := net.size(name)) is not None]
    lo = min((s.lo for _, s in specs), default=1)
    hi = max((s.hi for _, s in specs), default=1)
    per_net = "; ".join(f"{n}: default {s.default}, {s.lo}..{s.hi}" for n, s in specs) or "no network has it yet"
    return Field(ge=lo, le=hi, description=f"{description} ({per_net})")


# After the bounds in each Annotated[...]: constraints first keep "minimum"/"maximum" in the schema.
JSON_INT = BeforeValidator(_json_integer)


class RunConfig(BaseModel):
    """A run's configuration; every field is optional in a request and defaults as in the lecture."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"net": "mlp", "seed": 2147483647, "batch_size": 32, "n_embd": 10, "n_hidden": 64, "block_size": 3,
                      "dtype": "float32", "variant": "chain", "train_steps": 0}, {"net": "wavenet"}],
    })

    net: Literal[tuple(NETS)] = Field("mlp", description="the network: " + ", ".join(  # type: ignore[valid-type]
        f"{name} ({net.title})" for name, net in NETS.items()))
    seed: Annotated[int, _bounded("seed", "seed of the generator that draws parameters, then the minibatch"), JSON_INT] = _D.seed
    batch_size: Annotated[int | None, _size("batch_size", "minibatch size n"), JSON_INT] = None
    n_embd: Annotated[int | None, _size("n_embd", "embedding dimensions per character"), JSON_INT] = None
    n_hidden: Annotated[int | None, _size("n_hidden", "hidden units"), JSON_INT] = None
    block_size: Annotated[int | None, _size("block_size", "context length in characters"), JSON_INT] = None
    n_head: Annotated[int | None, _size("n_head", "attention heads"), JSON_INT] = None
    n_layer: Annotated[int | None, _size("n_layer", "transformer blocks"), JSON_INT] = None
    dtype: Literal["float32", "float64"] = Field(_D.dtype, description="float32 shows rounding; float64 agreement to ~1e-15")
    variant: Literal["chain", "fused"] = Field(_D.variant,
                                               description="chain: every step; fused: cross-entropy and batchnorm in one")
    train_steps: Annotated[int, _bounded("train_steps", "0: gradients at initialisation; N: after N SGD steps"), JSON_INT] = 0
    train_schedule_steps: Annotated[int, Field(ge=0, le=LIMITS["train_steps"][1], description=(
        "M > train_steps: a training scheduled for M steps (lr 0.1, then 0.01 from M/2) that was stopped after "
        "train_steps, as the Train view's Stop leaves it; 0 (or any M <= train_steps): it ran its whole schedule")),
        JSON_INT] = 0


class RunRequest(RunConfig):
    """Body of POST /api/runs."""


class BatchItem(BaseModel):
    context: str = Field(examples=["emm"])
    target: str = Field(examples=["a"])


class NodeSummary(BaseModel):
    name: str
    kind: Literal["param", "intermediate"]
    shape: list[int]
    manual_shape: list[int] | None
    forward: str = Field(description="the forward line that makes the node ('' for a parameter)")
    formula: str = Field(description="the backward formula for d<name> in this variant")
    notes: list[str] = Field(description="where the computed form differs from the formula's text, and why")
    fused: str | None = Field(description="the fused block that produced this gradient, if any")
    skipped_by: str | None = Field(None, description="in the fused variant: the fused block whose one-step "
                                                     "formula skips over this node (its gradient is still shown)")
    status: Status = Field(description="manual backward end to end vs autograd")
    local_status: Status = Field(description="this node's step alone, fed autograd's upstream gradient")
    exact: bool
    approx: bool
    maxdiff: float | None = Field(description="max |manual − autograd|; null when not comparable or not finite")
    relerr: float | None
    local_maxdiff: float | None
    nonfinite: bool = Field(description="true when the manual gradient or its difference holds NaN or ±Inf")
    message: str


class GraphNode(BaseModel):
    name: str
    kind: Literal["param", "data", "intermediate", "loss"]
    status: Status | None = None
    skipped_by: str | None = None


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[tuple[str, str]] = Field(description="forward edges [from, to]")


class DataInfo(BaseModel):
    name: str
    words: int
    vocab: str
    fingerprint: str


class RunDocument(BaseModel):
    run_id: str = Field(examples=["r2-mlp-f32-chain-s2147483647-t0-b32-e10-h64-k3-d5b1f3c2a"])
    config: RunConfig
    loss: float | None
    loss_finite: bool
    counts: dict[str, int] = Field(description="how many of the network's gradients have each status")
    batch: list[BatchItem]
    nodes: list[NodeSummary] = Field(description="every gradient of the network, in backward (cmp table) order")
    graph: Graph
    data: DataInfo


class EncodedArray(BaseModel):
    """A 2-D float32 array as base64 (little-endian), plotly.js's typed-array form."""

    dtype: Literal["f4"]
    shape: str = Field(examples=["32, 64"])
    bdata: str


class TensorStats(BaseModel):
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    norm: float | None
    numel: int
    nonfinite: int


class NodeStats(BaseModel):
    value: TensorStats
    manual: TensorStats | None
    autograd: TensorStats | None
    diff: TensorStats | None


ArrayOut = EncodedArray | list[list[float | None]] | None


class NodeDetail(BaseModel):
    run_id: str
    name: str
    requested_as: str | None = Field(None, description="the seed notebook's name the request used (zprebn, apreact, a)")
    kind: Literal["param", "intermediate"]
    shape: list[int]
    display_shape: list[int] = Field(description="shape of the 2-D arrays below")
    downsampled: bool
    how: str = Field(description="how the tensor was made 2-D and reduced for display ('' if as is)")
    block: list[int] = Field(description="rows × columns of the tensor merged into one displayed cell")
    encoding: Literal["b64", "list"]
    sample: int | None = Field(None, description="the sample shown of a (batch, head, ·, ·) tensor (query "
                                                 "parameter `sample`); null for other tensors, shown whole")
    samples: int | None = Field(None, description="B, the samples such a tensor has (sample is 0..B-1); else null")
    value: ArrayOut
    manual: ArrayOut
    autograd: ArrayOut
    diff: ArrayOut = Field(description="|manual − autograd|, block maximum when downsampled")
    stats: NodeStats = Field(description="on the full tensors, never on the display copy")
    summary: NodeSummary
    figure: dict[str, Any] | None = Field(description="plotly figure JSON (data + layout) from ninja_core's builder")


class GradcheckEntry(BaseModel):
    name: str
    entries: list[list[int]]
    numeric: list[float | None]
    autograd: list[float | None]
    manual: list[float | None]
    relerr: float | None
    relerr_manual: float | None


class GradcheckDocument(BaseModel):
    run_id: str
    method: str
    params: list[GradcheckEntry]


class SizeInfo(BaseModel):
    name: str = Field(examples=["n_hidden"])
    default: int
    min: int
    max: int
    help: str


class TrainInfo(BaseModel):
    """How GET /api/train/stream trains this network when the query names only the network."""

    steps: int = Field(description="the stream's default length (the recipe's, at most 20000)", examples=[20000])
    recipe_steps: int = Field(description="the full recipe's length (the lecture's 200000 for the MLP and WaveNet)")
    sizes: dict[str, int] = Field(description="the sizes it trains (the MLP: n_hidden 200, not the check's 64)",
                                  examples=[{"batch_size": 32, "n_embd": 10, "n_hidden": 200, "block_size": 3}])
    optimizer: Literal["sgd", "adamw"]
    lr: float = Field(description="learning rate until lr_decay_at")
    lr_decay_at: float = Field(description="fraction of the steps after which lr_decayed applies")
    lr_decayed: float
    weight_decay: float = Field(description="AdamW's decoupled weight decay on the matrices (0 for SGD)")


class NetInfo(BaseModel):
    name: str = Field(examples=["wavenet"])
    title: str = Field(examples=["WaveNet (makemore part 5)"])
    sizes: list[SizeInfo] = Field(description="the config fields this network has (batch_size first)")
    train: TrainInfo = Field(description="the training stream's defaults for this network")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    pid: int = Field(description="the worker process that answered (several share a port)")
    runs: dict[str, Any] = Field(description="this process's run cache, trainings and checkpoint store counters")


class ErrorBody(BaseModel):
    error: str = Field(description="a short code: validation_error, not_found, too_large, busy, ...")
    message: str = Field(description="what was wrong and what is allowed, in one sentence")
    field: str | None = None
    allowed: list[str] | None = None
    detail: list[dict[str, Any]] | None = None


# Code fields are capped by the request body limit (413) long before this; below it, the network's own
# source limit answers with a 400 that names it (ninja_core.dojo.source_limits: twice the reference).
CODE_MAX_CHARS = 64 * 1024


def _source_limits(kind: str) -> str:
    """'mlp, wavenet: 16,384; gpt: 40,960' -- each network's limit for `kind` ("node" or "cell")."""
    by_size: dict[int, list[str]] = {}
    for name, net in NETS.items():
        by_size.setdefault(getattr(source_limits(net), kind), []).append(name)
    return "; ".join(f"{', '.join(names)}: {size:,}" for size, names in by_size.items())


class CheckRequest(BaseModel):
    """Body of POST /api/runs/{run_id}/check: one node's gradient, written by the learner."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"node": "h", "code": "dh = dlogits @ W2.T"}]})

    node: str = Field(max_length=40, pattern=NODE_NAME_CHARS,
                      description="the node whose gradient the code computes (one of the run's nodes; the MLP also "
                                  "takes the seed notebook's zprebn, apreact, a)")
    code: str = Field(max_length=CODE_MAX_CHARS, description="Python subset; the answer is d<node> or the last expression. "
                      f"Bytes of UTF-8 allowed, per network: {_source_limits('node')}; longer code is a 400 (kind "
                      "limit) naming the limit")
    lang: Literal["en", "de"] = Field("en", description="language of the figure's labels and the messages")


class GradeRequest(BaseModel):
    """Body of POST /api/runs/{run_id}/grade: a whole exercise cell."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"code": "dlogprobs = torch.zeros_like(logprobs)"}]})

    code: str = Field(max_length=CODE_MAX_CHARS, description="the whole exercise-1 cell; every d<name> it defines is "
                      "judged. Bytes of UTF-8 allowed, per network (twice its longest reference cell, in whole 4 KiB): "
                      f"{_source_limits('cell')}; longer code is a 400 (kind limit) naming the limit")
    lang: Literal["en", "de"] = Field("en", description="language of the messages")


class FixInfo(BaseModel):
    """The first one-edit change that makes a wrong formula right (issue 14, item 5)."""

    kind: Literal["name", "sign", "transpose", "keepdim", "count", "dims"]
    line: int
    col: int = Field(description="1-based column where the edit goes")
    message: str = Field(description="one edit makes it right: use W2 instead of dW2 at line 1, column 16")
    status: Status = Field(description="what the edited code gets: exact or approx")


class LensRow(BaseModel):
    """The answer under one named tolerance standard: |yours - autograd| <= atol + rtol * |autograd|."""

    standard: str = Field(examples=["torch.testing.assert_close"])
    rtol: float
    atol: float
    passed: bool
    used: float | None = Field(description="largest share of the tolerance any entry takes (<= 1 passes; null: inf)")
    source: str = Field(description="the tool's call and numbers these come from")


class RoundingInfo(BaseModel):
    """For an approx answer: its distance in ulps and the learner's code rerun in float64."""

    ulps: int = Field(description="largest distance in units in the last place of autograd's dtype")
    index: list[int] = Field(description="the entry with that distance")
    yours: float | None
    autograd: float | None
    float64_maxdiff: float | None = Field(description="max |yours - autograd| with the code rerun in float64")
    proved: bool | None = Field(description="true: in float64 it agrees to 1e-12, so the formula is right")


class BatchInfo(BaseModel):
    """The same code on another minibatch of the same network (another seed, the same sizes)."""

    seed: int
    status: Literal["exact", "approx", "mismatch", "shape_mismatch", "missing", "error"]
    passed: bool
    diagnosis: list[str]


class CheckVerdict(BaseModel):
    node: str
    variable: str = Field(description="where the answer was read: d<node>, its alias, or 'last expression'")
    status: Status
    passed: bool
    exact: bool
    approx: bool
    maxdiff: float | None
    relerr: float | None
    nonfinite: list[str] = Field(description="fields that were NaN/Inf and are sent as null")
    shape: list[int] | None
    expected_shape: list[int] | None
    dtype: str | None
    expected_dtype: str
    diagnosis: list[str] = Field(description="plain-words findings: shape, transposed, sign, factor, missing branch, ...")
    output: list[str] = Field(description="what print() wrote")
    figure: dict[str, Any] | None = Field(description="plotly figure: value, yours, autograd, |diff|")
    fix: FixInfo | None = Field(None, description="the one-edit change that makes a wrong formula right")
    lens: list[LensRow] | None = Field(None, description="the verdict under other tolerance standards (same shape only)")
    rounding: RoundingInfo | None = Field(None, description="approx: ulps and the float64 rerun")
    batches: list[BatchInfo] = Field([], description="a right answer judged on other minibatches too")


class DojoErrorInfo(BaseModel):
    kind: Literal["forbidden", "limit", "timeout", "runtime", "syntax", "no_answer"]
    message: str
    line: int | None
    col: int | None
    text: str


class GradeRow(BaseModel):
    name: str
    variable: str | None
    status: Status
    local_status: str
    exact: bool
    approx: bool
    maxdiff: float | None
    relerr: float | None
    local_maxdiff: float | None
    nonfinite: list[str]
    shape: list[int] | None
    expected_shape: list[int] | None
    diagnosis: list[str] = Field(description="the line that names the cause first")
    lines: list[int]
    local_error: DojoErrorInfo | None
    fix: FixInfo | None = Field(None, description="the one-edit change of the node's own lines that makes them right")
    lens: list[LensRow] | None = Field(None, description="the end-to-end answer under other tolerance standards")
    rounding: RoundingInfo | None = Field(None, description="approx: ulps and the node's own lines rerun in float64")
    batches: list[BatchInfo] = Field([], description="a right answer, from the cell run on other minibatches")


class GradeDocument(BaseModel):
    nodes: list[GradeRow] = Field(description="every gradient of the run's network, in backward order")
    totals: dict[str, int]
    complete: bool = Field(description="false when the cell stopped with an error (see error)")
    error: DojoErrorInfo | None
    output: list[str]
    notes: list[str]


class CodeErrorBody(ErrorBody):
    kind: str = Field(description="forbidden, limit, timeout, runtime, syntax or no_answer")
    line: int | None = None
    col: int | None = None
