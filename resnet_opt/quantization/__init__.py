"""Precision rewrites of an FP32 ONNX: explicit INT8 Q/DQ for TensorRT or the CPU, and FP16.

The calibration ranges come from `resnet_opt.calibration`; this package only decides where
quantization happens (placement), writes the Q/DQ nodes and quantized weights (qdq), converts to
FP16 (fp16), and finds the layers that cost the most accuracy (sensitivity). The stage that ties
them to files and manifests is `resnet_opt.pipeline.quantize`.
"""
