# The hub's image: one image, every Procfile process type.
#   docker build -t feedback-hub .
#   docker run --env-file .env -p 5000:5000 feedback-hub          # web
#   docker run --env-file .env feedback-hub worker                 # worker
#   docker run --env-file .env feedback-hub release                # the release check
# compose.yaml runs all three with Redis.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md app.py ./
COPY integrations ./integrations
COPY rules ./rules
COPY workers ./workers
# Wheels of the hub and its run dependencies only (not the test extras).
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=5000
RUN useradd --create-home --uid 10001 --user-group hub
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels
WORKDIR /app
# The Procfile is what runs; the rules file is read from here (RULES_PATH, default
# rules/default.yml) and can be replaced by mounting another.
COPY --chown=hub:hub Procfile ./
COPY --chown=hub:hub rules/default.yml rules/default.tests.yml ./rules/
USER hub
EXPOSE 5000
# The argument names a Procfile process type; its command runs in a shell, as on Heroku
# ($PORT expanded), and replaces the shell so signals reach it.
ENTRYPOINT ["/bin/sh", "-c", "cmd=$(sed -n \"s/^$0:[[:space:]]*//p\" Procfile); if [ -z \"$cmd\" ]; then echo \"no process type '$0' in the Procfile\" >&2; exit 64; fi; exec /bin/sh -c \"exec $cmd\""]
CMD ["web"]
