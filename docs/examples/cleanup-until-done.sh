#!/bin/sh
# Runs `flask jwt cleanup` until it is done, for a cron job that must not leave
# a backlog. Exit status of the command: 0 done, 3 stopped at the time limit
# with expired rows left (run it again), 1 an error. Options given to this
# script are passed on to the command.
cd /srv/app || exit 1
runs=0
while :; do
    .venv/bin/flask jwt cleanup --quiet --time-limit 60 "$@"
    status=$?
    runs=$((runs + 1))
    if [ "$status" -ne 3 ]; then
        exit "$status"
    fi
    if [ "$runs" -ge 10 ]; then
        echo "flask jwt cleanup: not done after $runs runs" >&2
        exit 3
    fi
done
