"""`python -m colorgan` (and so `accelerate launch -m colorgan`, `torchrun -m colorgan`)."""

from colorgan.cli import main

if __name__ == "__main__":
    main()
