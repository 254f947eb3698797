"""cms-mock: contract-first, stateful mocks of the CMS and Customer Profile services."""

__version__ = "1.1.0"
