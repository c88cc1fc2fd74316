"""`python -m resnet_opt.cli`: the console script, for environments without it on PATH."""

from resnet_opt.cli import main

main()
