"""The bottom layer: the artifact contract every other part of resnet-opt shares.

Manifests (the JSON sidecar of every artifact), the preprocessing contract they carry, content
hashes and atomic writes. Modules here import only the standard library, numpy and
`resnet_opt.errors`, so any layer above may use them without pulling in a framework or making an
import circle (see ARCHITECTURE.md, "Layers").
"""
