"""Pricing's functions, behind the `drg price` stage (jobs/price.py): the policy (policy.py), relative
weights with their trim (weights.py), hospital coefficients, base rates and case payments (payments.py),
efficiency indices and the grouping's RIV/CV (indices.py), and the simulated cases that prove weights
are recovered (sim.py)."""
