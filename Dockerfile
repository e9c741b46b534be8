# Owlscope: one image for every role.
#   docker run -p 3000:3000 -v owlscope:/data owlscope            # `owlscope serve`: embedded, one process
#   docker run ... owlscope web | worker | migrate | doctor        # scale-out roles, chosen by argument
# BASE_IMAGE must be a Debian-based image with python3 (3.11+) and its venv module.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Optional: the CA bundle for pip behind a TLS-intercepting proxy.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python3 -m venv /opt/owlscope
COPY pyproject.toml README.md ./
COPY owlscope ./owlscope
# Build the wheel, then install it with its dependencies into the venv that the final stage copies.
# Left out of the image, as nothing in it loads them: pandas and numpy (chDB's package requires them;
# `owlscope serve`, `web` and `worker` start with both reported missing, see cli/main.py), pyarrow's
# Flight RPC and S3 filesystem libraries (Owlscope uses Arrow tables and IPC streams only), the test
# suites the packages ship, and pip.
RUN /opt/owlscope/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/owlscope/bin/pip install /wheels/owlscope-*.whl \
 && /opt/owlscope/bin/pip uninstall -y pandas numpy \
 && /opt/owlscope/bin/pip uninstall -y pip \
 && rm -f /opt/owlscope/lib/python3*/site-packages/pyarrow/libarrow_flight.so* \
          /opt/owlscope/lib/python3*/site-packages/pyarrow/libarrow_python_flight.so* \
          /opt/owlscope/lib/python3*/site-packages/pyarrow/_flight.*.so \
          /opt/owlscope/lib/python3*/site-packages/pyarrow/libarrow_s3.so* \
          /opt/owlscope/lib/python3*/site-packages/pyarrow/_s3fs.*.so \
 && find /opt/owlscope -type d -name tests -path '*/site-packages/*/tests' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 owlscope \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin owlscope \
 && mkdir -p /data && chown owlscope:owlscope /data
COPY --from=build /opt/owlscope /opt/owlscope
ENV PATH=/opt/owlscope/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    OWLSCOPE_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["owlscope", "healthcheck"]
ENTRYPOINT ["owlscope"]
CMD ["serve"]
