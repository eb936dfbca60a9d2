# cython: language_level=3
"""Python wrapper of the 82599 device model (csrc/sim/ixgbe_model.c). Placeholder until the model lands."""
