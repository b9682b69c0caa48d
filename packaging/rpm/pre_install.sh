# lava .rpm %pre: the system user (home /var/lib/lava).
if ! getent group lava >/dev/null; then
    groupadd --system lava
fi
if ! getent passwd lava >/dev/null; then
    useradd --system --gid lava --home-dir /var/lib/lava --no-create-home \
        --shell /sbin/nologin --comment "lava job runner" lava
fi
exit 0
