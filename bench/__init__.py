"""Benchmarks of cms-mock; ``python -m bench`` runs them (see bench/README in the main README)."""
