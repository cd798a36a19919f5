# ruff: noqa: E501  (the seed notebook's own lines, German comments and all, kept as they are)
"""The seed notebook's own cells (/work/shared/seed-notebook.txt, German comments and all), for the
notebook tests: run in a plain namespace (`run_cells`) or as a real notebook on a kernel
(`seed_notebook`). Three changes, each needed to run here: the words come from the bundled word
list instead of names.txt; matplotlib (not installed, and never used by these cells) is not
imported; and the cell defining the lecture's `cmp` is replaced by `from ninja_core import cmp,
judge` -- except in `seed_notebook(own_cmp=True)`, which keeps it to show the seed's TypeError.
"""

from __future__ import annotations

from ninja_core.data import DEFAULT_DATA

IMPORTS = """\
import torch
import torch.nn.functional as F # torch.nn.functional is a module that contains all the functions in the torch.nn library
import random
"""

WORDS = f"""\
words = open({str(DEFAULT_DATA)!r}, "r").read().splitlines()
print(len(words))
print(words[:10])
"""

VOCAB = """\
chars = sorted(set(''.join(words)))
char2idx = {c: i+1 for i, c in enumerate(chars)}
char2idx['.'] = 0
idx2char = {i: c for c, i in char2idx.items()}
vocab_size = len(idx2char)
print(vocab_size)
"""

DATASET = """\
block_size = 3

def build_dataset(words):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = char2idx[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]

    X = torch.tensor(X)
    Y = torch.tensor(Y)
    return X, Y

random.seed(42)
shuffled_words = words.copy()
random.shuffle(shuffled_words)
n1 = int(0.8 * len(shuffled_words))
n2 = int(0.9 * len(shuffled_words))

Xtr, Ytr = build_dataset(words[:n1]) # 80% training
print("Train Length: ", len(Xtr))
Xdev, Ydev = build_dataset(words[n1:n2]) # 10% development
print("Dev   Length: ", len(Xdev))
Xte, Yte = build_dataset(words[n2:]) # 10% test
print("Test  Length: ", len(Xte))
"""

# In [66]: the lecture's cmp as the seed notebook has it (it crashes on a None gradient)
SEED_CMP = """\
# Utility Function um Gradienten manuell zu berchnen und mit den AutoGrad's von PyTroch zu vergleichen
def cmp(s, dt, t):
    ex = torch.all(dt == t.grad).item() # 1. Variante checkt ob die beiden Tensoren gleich sind
    app = torch.allclose(dt, t.grad)    # 2. Variante checkt ob die beiden Tensoren fast gleich sind
    maxdiff = (dt - t.grad).abs().max().item() # gibt den maximalen Unterschied zwischen den beiden Tensoren zurück
    print(f"{s:15s} | exact: {str(ex):5s} | approx: {str(app):5s} | maxdiff: {maxdiff}")
"""

OUR_CMP = "from ninja_core import cmp, judge\n"

PARAMS = """\
n_embd = 10
n_hidden = 64

g = torch.Generator().manual_seed(2147483647)
C = torch.randn((vocab_size, n_embd), generator=g)

# Layer 1
W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5/3) / ((n_embd * block_size) ** 0.5) # fan_in = n_embd * block_size, damit Gewichte normalverteilt sind, wegen Sättigung der tanh
b1 = torch.randn((n_hidden,), generator=g) * 0.1 # eig wayne, weil durch BatchNorm Bias ersetzt
# Layer 2
W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
b2 = torch.randn((vocab_size,), generator=g) * 0.1
# BatchNorm
bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0 # auch als "gamma" bezeichnet, skaliert die Normalverteilung der Aktivierung, damit sie nicht zu klein wird
bnbias = torch.randn((1, n_hidden), generator=g) * 0.1 # auch als "beta" bezeichnet, verschiebt die Normalverteilung der Aktivierung

parameters = [C, W1, b1, W2, b2, bngain, bnbias]
print(sum(p.nelement() for p in parameters))
for p in parameters:
    p.requires_grad = True
"""

BATCH = """\
# Erstellen eines Mini-Batches
batch_size = 32
n = batch_size
# Parameter stehen für: low, high, size, generator -> random index im Bereich von 0 bis Xtr.shape[0], davon 32 Stück
ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
Xb, Yb = Xtr[ix], Ytr[ix]
"""

FORWARD = """\
# Forward Pass

emb = C[Xb] # (32, 3, 10)
embcat = emb.view(emb.shape[0], -1) # (32, 30)

# Linear Layer 1
zprebn = embcat @ W1 + b1 # (32, 64) -> Hidden Layer Pre-Activation z

# BatchNorm Layer
bnmeani = 1/n * zprebn.sum(dim=0, keepdim=True) # (1, 64) # von allen 32 Samples den Mittelwert berechnen
bndiff = zprebn - bnmeani # (32, 64) # von allen 32 Samples den Mittelwert abziehen -> Abweichung
bndiff2 = bndiff ** 2 # (32, 64) # Abweichung quadrieren -> Varianz
bnvar = 1/(n-1) * bndiff2.sum(dim=0, keepdim=True) # (1, 64) # Varianz berechnen (n-1 ist Bessels Korrektur)
bnvar_inv = (bnvar + 1e-5) ** -0.5 # (1, 64) # Inverse Wurzel der Varianz berechnen, für Normalisierung
bnraw = bndiff * bnvar_inv # (32, 64)
apreact = bngain * bnraw + bnbias # (32, 64) # Skalierung und Verschiebung der Normalisierten Werte
# Nicht-Lineare Aktivierungsfunktion
a = torch.tanh(apreact) # (32, 64) # tanh Aktivierungsfunktion

# Linear Layer 2
logits = a @ W2 + b2 # (32, 64) @ (64, 27) + (27,) -> (32, 27)

# Cross Entropy Loss (Softmax + Negative Log Likelihood)
logit_maxes = logits.max(dim=1, keepdim=True).values # (32, 1) # Maximalen Wert von jedem Sample berechnen
norm_logits = logits - logit_maxes # (32, 27) # Logits normalisieren, damit es keine Overflows gibt
counts = norm_logits.exp() # (32, 27) # Exponentialfunktion auf die normalisierten Logits anwenden
counts_sum = counts.sum(dim=1, keepdim=True) # (32, 1) # Summe der Exponentialfunktionen berechnen
counts_sum_inv = counts_sum ** -1 # (32, 1) # Inverse der Summe berechnen
probs = counts * counts_sum_inv # (32, 27) # Wahrscheinlichkeiten berechnen
logprobs = probs.log() # (32, 27) # Logarithmus der Wahrscheinlichkeiten berechnen
loss = -logprobs[range(n), Yb].mean() # (32,) # Negative Log Likelihood berechnen


# Pytorch Autograd
for p in parameters:
    p.grad = None

for t in [logprobs, probs, counts_sum_inv, counts_sum, counts, norm_logits, logit_maxes, logits, a, apreact, bnraw, bnvar_inv, bndiff2, bndiff, bnmeani, zprebn, embcat, emb]:
    t.retain_grad() # PyTorch soll die Gradienten der Tensoren speichern

loss.backward()
loss
"""

# In [74]: the seed notebook's backward cell as it is: its misnamed da (it holds d(apreact)), its
# cmp("dh", dh, zprebn), its cmp on the never-retained bnvar, and everything after dbndiff2 unfinished.
BACKWARD = """\
dlogprobs = torch.zeros_like(logprobs) # loss = -logprobs[range(n), Yb].mean()
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs # logprobs = probs.log()
dcounts_sum_inv = (counts * dprobs).sum(dim=1, keepdim=True) # probs = counts * counts_sum_inv -> nach "counts_sum_inv" ableiten
dcounts = counts_sum_inv * dprobs # probs = counts * counts_sum_inv -> nach "counts" ableiten
dcounts_sum = (-counts_sum ** -2) * dcounts_sum_inv # counts_sum_inv = counts_sum ** -1 -> nach "counts_sum" ableiten
# counts_sum = counts.sum(dim=1, keepdim=True) -> nach "counts" ableiten
dcounts += torch.ones_like(counts) * dcounts_sum # hier kommt += rein, weil wir quasi in einem weiteren Ableitungszweig von "counts" sind
dnorm_logits = counts * dcounts # counts = norm_logits.exp() -> nach "norm_logits" ableiten
# norm_logits = logits - logit_maxes -> nach "logit_maxes" ableiten
dlogits = dnorm_logits.clone() # nicht das finale dlogits, sondern nur die Ableitung von "norm_logits" nach "logits"
dlogit_maxes = -dlogits.sum(dim=1, keepdim=True)
dlogits += F.one_hot(logits.max(dim=1).indices, num_classes=logits.shape[1]) * dlogit_maxes # logit_maxes = logits.max(dim=1, keepdim=True).values
dh = dlogits @ W2.T
dW2 = a.T @ dlogits
db2 = dlogits.sum(dim=0)
da = (1.0 - a**2) * dh
dbngain = (bnraw * da).sum(dim=0, keepdim=True)
dbnraw = bngain * da
dbnbias = da.sum(dim=0, keepdim=True)
dbnvar_inv = (bndiff * dbnraw).sum(dim=0, keepdim=True)
dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar



cmp("logprobs", dlogprobs, logprobs)
cmp("probs", dprobs, probs)
cmp("counts_sum_inv", dcounts_sum_inv, counts_sum_inv)
cmp("dcounts", dcounts, counts)
cmp("dcounts_sum", dcounts_sum, counts_sum)
cmp("dnorm_logits", dnorm_logits, norm_logits)
cmp("dlogits", dlogits, logits)
cmp("dlogit_maxes", dlogit_maxes, logit_maxes)
cmp("dh", dh, zprebn)
cmp("dW2", dW2, W2)
cmp("db2", db2, b2)
cmp("da", da, a)
cmp("dbngain", dbngain, bngain)
cmp("dbnraw", dbnraw, bnraw)
cmp("dbnbias", dbnbias, bnbias)
cmp("dbnvar_inv", dbnvar_inv, bnvar_inv)
cmp("dbnvar", dbnvar, bnvar)
cmp("dbndiff2", dbndiff2, bndiff2)
"""

JUDGE = "judge(globals())\n"

# One planted mistake per kind of the dojo's list, each a (old, new) edit of BACKWARD and the words
# the judged table must show for it (the row it lands on, and what the diagnosis says).
PLANTED: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "sign": ("dbnbias = da.sum(dim=0, keepdim=True)", "dbnbias = -da.sum(dim=0, keepdim=True)", "bnbias",
             ("the sign is flipped",)),
    "missing branch": ("dcounts += torch.ones_like(counts) * dcounts_sum", "pass", "counts",
                       ("the branch from counts_sum (+=) is missing",)),
    "keepdim": ("dbngain = (bnraw * da).sum(dim=0, keepdim=True)", "dbngain = (bnraw * da).sum(dim=0)", "bngain",
                ("keepdim=True is missing",)),
    # the seed stops at dbndiff2; the next lines learners write, with the classic alias: dzprebn and
    # dbndiff become one tensor, so the += for dzprebn changes dbndiff too
    "alias without clone": (
        "dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar\n",
        "dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar\n"
        "dbndiff = bnvar_inv * dbnraw\n"
        "dbndiff += 2 * bndiff * dbndiff2\n"
        "dbnmeani = (-dbndiff).sum(dim=0, keepdim=True)\n"
        "dzprebn = dbndiff\n"
        "dzprebn += 1.0/n * torch.ones_like(zprebn) * dbnmeani\n",
        "bndiff", ("share storage", "dzprebn = dbndiff.clone()")),
}


def cells(*, dtype: str = "float32", own_cmp: bool = False, backward: str = BACKWARD, judge: bool = True) -> list[str]:
    """The seed notebook's cells in order; float64 converts the parameters after they are drawn."""
    params = PARAMS if dtype == "float32" else PARAMS.replace(
        "parameters = [C, W1, b1, W2, b2, bngain, bnbias]",
        "C, W1, b1, W2, b2, bngain, bnbias = [p.double() for p in (C, W1, b1, W2, b2, bngain, bnbias)]\n"
        "parameters = [C, W1, b1, W2, b2, bngain, bnbias]")
    found = [IMPORTS, WORDS, VOCAB, DATASET, SEED_CMP if own_cmp else OUR_CMP, params, BATCH, FORWARD, backward]
    if own_cmp:
        found.insert(5, "from ninja_core import judge\n")
    return [*found, JUDGE] if judge else found


def planted(kind: str) -> str:
    old, new, _, _ = PLANTED[kind]
    assert BACKWARD.count(old) == 1, old
    return BACKWARD.replace(old, new)
