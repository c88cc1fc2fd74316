"""Measuring, the parts of `bench` and `eval`: the timed loop (timing.py), backend choice
(targets.py), scoring (scoring.py), accuracy with predictions kept (accuracy.py), the machine
(machine.py) and progress (progress.py). The stage functions are resnet_opt.pipeline.bench.bench
and resnet_opt.pipeline.evaluate.evaluate.

Not named `bench`: `from resnet_opt import bench` is the public API's stage function, which a
subpackage of that name would shadow once imported.
"""
