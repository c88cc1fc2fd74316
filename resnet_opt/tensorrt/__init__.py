"""The TensorRT backend: plain decisions (version table, profile, DLA, compatibility, timing
cache) tested on the CPU, and the thin layer of calls into TensorRT (`builder`) that runs only
where TensorRT and a GPU are. Nothing here imports TensorRT at module level.
"""
