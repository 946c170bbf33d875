// The body of the thread `parseJUnitOffLoop` starts for a large report: parse it, post the cases, end.
import { parentPort, workerData } from 'node:worker_threads';
import { parseJUnit } from '@fleet/runs';

parentPort?.postMessage(parseJUnit(workerData as string));
