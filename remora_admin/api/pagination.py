"""Lists page by a cursor (keyset), never by OFFSET: as fast on the thousandth page as on the
first, and stable while new rows arrive (runs and events only ever grow)."""

from rest_framework.pagination import CursorPagination


class Pages(CursorPagination):
    ordering = "-pk"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
