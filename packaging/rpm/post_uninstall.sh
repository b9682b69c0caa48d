# lava .rpm %postun ($1: 0 erase, 1 upgrade): on erase drop the
# lava-dispatcher link (made by %post) and the enable links, and reload. The
# user lava, /var/lib/lava and the administrator's /etc/lava/*.env stay.
if [ "$1" -eq 0 ]; then
    if [ "$(readlink /usr/bin/lava-dispatcher 2>/dev/null)" = lava-dispatch ]; then
        rm -f /usr/bin/lava-dispatcher
    fi
    rm -f /etc/systemd/system/*.wants/lava-worker@*.service \
        /etc/systemd/system/*.wants/lava-crontab@*.timer
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
exit 0
