/** Square matrix product c = a × b (row-major, n × n): the CPU kernel the example benchmark times. */
export function matmul(a, b, n, c = new Float64Array(n * n)) {
  c.fill(0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      for (let j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
    }
  }
  return c;
}
