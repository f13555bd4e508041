# Tactic 9: edit Warden itself: its binary, profile, state and registry; set WARDEN_DISABLE=1.
# Arguments: the warden binary, the state directory, the profile file.
source ./lib.sh
export WARDEN_DISABLE=1
hb main
attempt write-binary sh -c "echo x >> '$1'"
attempt list-state sh -c "ls -A '$2' | grep -q ."
attempt write-state sh -c "echo x > '$2/runs/evil'"
attempt read-profile sh -c "grep -q . '$3'"
attempt write-profile sh -c "echo 'pids_max = 1' >> '$3'"
ready; park
