# lava .rpm %post ($1: 1 install, 2 upgrade): the lava-dispatcher link,
# home, /tmp/lava, unit reload.
# cargo-generate-rpm cannot package a symlink: make the one old crontab
# lines and the original's name call.
ln -sfn lava-dispatch /usr/bin/lava-dispatcher
install -d -m 0750 -o lava -g lava /var/lib/lava
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/lava.conf || :
else
    install -d -m 1770 -o lava -g lava /tmp/lava
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    # Upgrade: running workers drain, then start the new version.
    if [ "$1" -ge 2 ]; then
        systemctl try-restart --no-block 'lava-worker@*.service' || :
    fi
fi
exit 0
