"""English dates as Attest has always shown them: ISO 8601, unambiguous wherever the reader is.

Django's own English formats (03/01/2025, "March 1, 2025") stay in use for everything not
named here, such as the admin.
"""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
