# Tactic 13: persistence: crontab, at, a systemd unit, shell startup hooks outside the workspace.
source ./lib.sh
hb main
attempt cron-d sh -c "echo '* * * * * root /bin/true' > /etc/cron.d/warden-evil"
attempt spool-cron sh -c "mkdir -p /var/spool/cron/crontabs && echo '* * * * * /bin/true' > /var/spool/cron/crontabs/root"
attempt systemd-unit sh -c "printf '[Service]\nExecStart=/bin/true\n' > /etc/systemd/system/warden-evil.service"
attempt profile-d sh -c "echo 'echo evil' > /etc/profile.d/warden-evil.sh"
attempt root-bashrc sh -c "echo 'echo evil' >> /root/.bashrc"
attempt at-job sh -c "echo true | at now + 1 minute"
# What only root could do, even to the agent's own files: make one immutable, give one to root.
touch pinned owned
attempt chattr-immutable chattr +i pinned
attempt chown-to-root chown 0:0 owned
ready; park
