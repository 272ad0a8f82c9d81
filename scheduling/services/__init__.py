"""Services are the only writers of domain rows: each function owns one explicit transaction."""
