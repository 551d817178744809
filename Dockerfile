# One image for web (gunicorn), worker and beat (Celery); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VAR_DIR=/var/lib/attest \
    STATIC_ROOT=/app/staticfiles

RUN useradd --system --home-dir /var/lib/attest --create-home attest
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY inventory inventory
COPY reviews reviews
COPY audit audit
RUN pip install --no-cache-dir -e .
COPY manage.py ./
COPY templates templates
# The compiled catalogues (django.mo) ship in the repository: no gettext in the image.
COPY locale locale
COPY static static
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput

USER attest
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--timeout", "300"]
