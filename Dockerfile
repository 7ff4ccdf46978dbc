# One image for web and workers. For NVIDIA GPUs build with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY requirements.txt constraints.txt ./
ARG TORCH_INDEX=""
RUN if [ -n "$TORCH_INDEX" ]; then pip install --no-cache-dir torch==2.13.0 torchvision==0.28.0 --index-url "$TORCH_INDEX"; fi \
 && pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
# Building needs no secret: collectstatic only reads the static files. The production
# settings refuse a short key, so it gets a throwaway random one that the image does not keep.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && gunicorn config.wsgi -b 0.0.0.0:8000 -w 2 --timeout 120"]
