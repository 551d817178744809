"""Japanese dates in their usual short form: 2025/03/01 and 2025/03/01 14:05.

Django's own Japanese formats (2025年3月1日) stay in use for everything not named here; the
hour is zero-padded so that times line up in tables.
"""

SHORT_DATE_FORMAT = "Y/m/d"
SHORT_DATETIME_FORMAT = "Y/m/d H:i"
