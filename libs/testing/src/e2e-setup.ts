import { jest } from '@jest/globals';

// End-to-end tests start real processes; each wait inside them is bounded and names what it waited for,
// so this outer limit only catches a test that hangs outright.
jest.setTimeout(300_000);
