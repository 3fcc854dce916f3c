"""One-off experiments: scripts that measured a decision once (the accuracy baseline, the
simulation's learning rates and targets, fleet/simulation parity). Each is a standalone script,
``python benchmarks/experiments/<name>.py``; ``pifed bench`` runs none of them (the scaling suite
imports ``simulation_targets.scaling_rows``).
"""
