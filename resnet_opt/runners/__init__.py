"""Backends behind one Runner protocol; see `resnet_opt.runners.base`."""
