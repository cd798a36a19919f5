# Backprop Ninja, CPU image:  docker build -t backprop-ninja .  &&  docker run -p 8000:8000 backprop-ninja
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/ninja

# CPU-only torch first, alone, from PyTorch's CPU wheel index (PyPI's torch is a multi-GB CUDA build);
# the same command as the Makefile's (requirements-torch.txt says why), then the rest from PyPI.
COPY requirements-torch.txt requirements.txt ./
RUN pip install --no-deps --retries 1 --timeout 15 -r requirements-torch.txt \
 && pip install -r requirements.txt

COPY ninja_core ./ninja_core
COPY app ./app
COPY templates ./templates
COPY static ./static

# Non-root; the app writes nothing to disk.
RUN useradd --system --uid 10001 --no-create-home ninja
USER 10001

# Binds 0.0.0.0 on purpose inside the container (outside, the server defaults to 127.0.0.1).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    NINJA_WORKERS=2 \
    NINJA_TORCH_THREADS=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# uvicorn, started by app/server.py so that every accepted socket gets TCP_NODELAY (see there).
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
