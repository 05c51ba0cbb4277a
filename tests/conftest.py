import os

# Set before torch is imported anywhere in the test process: see README, "Development".
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
# data_dir() is ./data of the current directory, and notebooks execute in nbs/: the suite reads the checkout's data/
os.environ.setdefault("VAENB_DATA", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
