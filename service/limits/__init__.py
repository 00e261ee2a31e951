"""Rate-limit policy: the named limits and their keys (policy.py) and the `limits` storage
SlowAPI counts in (storage.py). The request path spends them in service/edge/step5_budget."""
