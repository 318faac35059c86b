"""The ``kgrag`` command line: the app in ``main``, one module per command group."""
