"""The dashboard's pages, one module per area; each builds a router over WebContext."""
