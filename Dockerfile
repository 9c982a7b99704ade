FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN useradd --create-home --shell /usr/sbin/nologin app
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
# DEBUG on loads settings without the deployment's secrets; a key given for the step keeps
# them from generating one into /app/.data, which every container would share.
RUN DEBUG=1 SECRET_KEY=collectstatic-only DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --noinput -v 0 \
    && chown -R app /app
USER app
EXPOSE 8000
# Migrations run in the `migrate` service of docker-compose.yml before web starts.
# -v 0: no daphne access log (it writes share links' tokens); the app logs requests itself.
CMD ["daphne", "-v", "0", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "chatsite.asgi:application"]
