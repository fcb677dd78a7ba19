"""Thin setup.py for BasicSR-style installs (``python setup.py develop``); the metadata is in pyproject.toml."""

from setuptools import setup

setup()
