#!/bin/sh
# The container's entrypoint: check TensorRT here, when the container runs, never at
# `docker build`. On JetPack, libnvinfer links libraries (libnvdla_compiler.so, libcuda) that
# NVIDIA's container runtime mounts from the host only when a container starts with
# `--runtime nvidia`, so importing tensorrt during the build fails (and always does under
# buildx/QEMU on a workstation). RESNET_OPT_SKIP_TENSORRT_CHECK=1 skips the check.
set -e
if [ "${RESNET_OPT_SKIP_TENSORRT_CHECK:-0}" != "1" ]; then
    if ! problem=$(python -c "import tensorrt" 2>&1); then
        echo "resnet-opt: TensorRT does not load in this container: $(echo "$problem" | tail -n 1)" >&2
        echo "resnet-opt: run it on the Jetson with '--runtime nvidia' (the runtime mounts the host's driver and TensorRT libraries)" >&2
        exit 3
    fi
fi
exec resnet-opt "$@"
