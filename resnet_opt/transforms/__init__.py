"""Graph rewrites: an ONNX model in, an equivalent (or deliberately rounded) model out.

BatchNormalization folded into the Conv/Gemm before it (`bn_fold`), constant subgraphs computed
once (`const_fold`), FP16 casts and the fp16-rounding float32 twin (`fp16`). They read no file,
write no manifest and run no model: the stages (`pipeline/fold`, `pipeline/export`,
`pipeline/quantize_fp16`) call them and record what they did. A layer below `quantization`,
`runners` and the stages (ARCHITECTURE.md, "Layers").
"""
