import os

# Set before torch is imported anywhere in the test process: see README, "Development".
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
