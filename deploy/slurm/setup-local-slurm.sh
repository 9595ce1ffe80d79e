#!/usr/bin/env bash
# A one-node Slurm on this machine (munge, MariaDB, slurmdbd, slurmctld, slurmd), for CI and
# for trying deploy/slurm/ on a workstation.  Needs root and Debian's packages; idempotent:
# a second run finds the daemons running and only waits for the node.
#
#   sudo deploy/slurm/setup-local-slurm.sh        # then: sinfo; sbatch ...; sacct
#
# Not a production configuration: one node, no cgroups (proctrack/linuxproc, task/none), the
# accounting database on loopback with a fixed password.  A site's Slurm is configured by its admins.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "setup-local-slurm.sh: run as root (it installs packages and starts daemons)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
need=()
for cmd in slurmctld slurmd slurmdbd munged mariadbd; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurm-wlm slurmdbd munge mariadb-server
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# munge: the authentication every Slurm daemon and command uses
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

# MariaDB holds the accounting that `sacct` reads (slurmdbd has no file-based storage)
if ! pgrep -x mariadbd >/dev/null; then
    (runuser -u mysql -- /usr/sbin/mariadbd --skip-networking=0 --bind-address=127.0.0.1 \
        >/var/log/slurm/mariadb.log 2>&1 &)
fi
for _ in $(seq 60); do mysqladmin ping --silent 2>/dev/null && break; sleep 0.5; done
mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
          CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci';
          GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
chmod 600 /etc/slurm/slurmdbd.conf

cat >/etc/slurm/slurm.conf <<CONF
ClusterName=pipeline-ci
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# No cgroups here.  Slurm 23.02 and later accept CgroupPlugin=disabled; 22.05 (Debian 12) has no
# such plugin and refuses to start with it, but starts with an empty cgroup.conf.
case "$(slurmd -V 2>/dev/null | awk '{print $2}')" in
    2[0-2].*) : >/etc/slurm/cgroup.conf ;;
    *) echo "CgroupPlugin=disabled" >/etc/slurm/cgroup.conf ;;
esac

pgrep -x slurmdbd >/dev/null || /usr/sbin/slurmdbd
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i -Q add cluster pipeline-ci >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
        idle*|mix*|alloc*) break ;;
        # jobs left completing by an earlier slurmd that died: down-and-resume clears them
        comp*) scontrol update nodename="$host" state=down reason="setup-local-slurm reset" >/dev/null 2>&1 || true ;;
    esac
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 0.5
done
sinfo
case "$(sinfo -h -n "$host" -o %t 2>/dev/null)" in
    idle*|mix*|alloc*) ;;
    *) echo "setup-local-slurm: node $host did not come up; see /var/log/slurm/" >&2; exit 1 ;;
esac
