"""Registration kiosk for individual candidates to the baccalauréat professionnel.

This package is the domain and its infrastructure. It never imports Textual: the
screens live in the ``screens`` package and call the services defined here.
"""

__version__ = "0.1.0"
