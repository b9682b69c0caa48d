# lava .rpm %preun ($1: 0 erase, 1 upgrade): on erase stop every lava unit
# (a worker drains first; systemctl waits for it).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop 'lava-crontab@*.timer' 'lava-crontab@*.service' \
        'lava-worker@*.service' || :
fi
exit 0
