/*
 * Built-in workloads (`memtriage sim NAME ...`): programs whose memory
 * behaviour we built in, for the demo, the tests and calibration.
 */
#ifndef MT_SIM_SIM_H
#define MT_SIM_SIM_H

/*
 * Entry point of `memtriage sim`: argv[0] is "sim", argv[1] the workload
 * name.  Returns the process exit status (0 ok, 2 usage error).
 */
int mt_cmd_sim(int argc, char **argv);

#endif
