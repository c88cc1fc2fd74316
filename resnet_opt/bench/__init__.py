"""The parts of `bench`: the timed loop (timing.py), backend choice (targets.py), accuracy with
predictions kept (accuracy.py), the machine (machine.py) and progress (progress.py). The stage
function itself is resnet_opt.pipeline.bench.bench.
"""
