"""`remora`: the Remora Admin console from a terminal. A client of the REST API under /api/
(HTTP only, standard library only besides click): it never imports the console's own code."""

__version__ = "0.1.0"
