package jobs

import "syscall"

// childAttr makes a child process die with the server: the kernel sends it
// SIGKILL when the thread that started it ends (the spawner's, which lives
// as long as the process), so a killed server leaves no job running behind
// it and a restarted one finds none.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// setNice sets a child's scheduling priority (niceness, 0 to 19).
func setNice(pid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice)
}
