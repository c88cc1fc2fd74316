"""Explicit INT8 Q/DQ in an FP32 ONNX, for TensorRT, the CPU or OpenVINO.

The calibration ranges come from `resnet_opt.calibration`; this package only decides where
quantization happens (the op table `ops`, one placement per layout), writes the Q/DQ nodes and
quantized weights (qdq), finds the layers that cost the most accuracy (sensitivity) and says
which fp16 ops ONNX Runtime ran in fp32 (fp16; the FP16 rewrite itself is
`resnet_opt.transforms.fp16`). The stage that ties them to files and manifests is
`resnet_opt.pipeline.quantize`.
"""
