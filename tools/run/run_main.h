/* run_main.h - the entry point of `layerfs run`, for tools/layerfs.c. */
#ifndef LAYERFS_RUN_MAIN_H
#define LAYERFS_RUN_MAIN_H

/* argv[0] is "run"; returns the exit status. */
int lfs_run_main(int argc, char **argv);

#endif
