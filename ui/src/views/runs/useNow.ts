// A clock for things that grow while a run goes on (running bars, elapsed time). It only ticks while `live`,
// so a finished run's view is not re-rendered every second for nothing.
import { useEffect, useState } from 'react'

export function useNow(live: boolean, everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    if (!live) return
    setNow(Date.now())
    const timer = setInterval(() => setNow(Date.now()), everyMs)
    return () => clearInterval(timer)
  }, [live, everyMs])
  return now
}
