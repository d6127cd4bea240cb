"""Speed benchmarks for immunoplan (`make bench`).

Each benchmark module defines ``run(report)`` and times its workload against a baseline that runs in the same
process, so the printed ratios do not depend on the machine's absolute speed. Benchmarks never assert on time.
"""
